"""Local stand-ins for the services ttlp talks to (TikTok, Euler Stream), for tests."""
