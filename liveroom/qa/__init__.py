"""Moderated fan Q&A: questions, votes, ranking, moderation and bringing the asker on stage."""
