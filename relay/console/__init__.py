"""The console: the web page served at /console (static files) and its sign-in sessions."""
