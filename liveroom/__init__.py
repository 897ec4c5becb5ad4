"""liveroom: live audio rooms — a host and speakers on stage, tens of thousands listening."""

__version__ = "0.1.0"
