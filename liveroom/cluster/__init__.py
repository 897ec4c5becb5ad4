"""Several liveroom nodes on one Redis (``--redis-url``)."""
