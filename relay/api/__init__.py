"""HTTP: the FastAPI app (`create_app`), what each API process keeps alive (`runtime`),
who is calling with what rights (`deps`), Redis calls off the event loop (`off_loop`),
errors in the seeds' `{code, message}` shape in one place, middleware, uvicorn with
bounds on slow clients (`server`), and one module per API area in `routes/`. Thin: it
composes the features and the store, and asks the workers for work by task name only."""
