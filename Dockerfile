FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY examples ./examples
COPY mappings ./mappings
RUN pip install --no-cache-dir .
ENV GATEWAY_DATABASE_URL=sqlite:////data/gateway.db
ENV GATEWAY_MAPPINGS_DIR=/app/mappings
EXPOSE 8080
CMD ["gateway", "serve", "--host", "0.0.0.0", "--port", "8080"]
