FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /srv/wa-inbox
COPY pyproject.toml README.md ./
COPY app ./app
COPY workers ./workers
COPY templates ./templates
COPY static ./static
RUN pip install --no-cache-dir -e . && useradd --system --home /srv/wa-inbox inbox
USER inbox
EXPOSE 8000
CMD ["inbox", "web", "--host", "0.0.0.0", "--port", "8000"]
