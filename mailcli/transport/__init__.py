"""How a TCP connection to a server is opened: addresses and families, the source
address, a SOCKS5 proxy (`connect`, `socks`), and the check that a port greets in clear.
Below the protocols: it imports only the shared base."""
