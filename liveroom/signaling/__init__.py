"""Socket.IO: authenticate, parse, authorize, call one service method, map the result to an ack."""
