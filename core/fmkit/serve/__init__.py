"""HTTP serving of exports: FastAPI + uvicorn with micro-batching."""
