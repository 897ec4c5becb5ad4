"""Users: everyone the server has seen, kept in SQL for names, markets and records."""
