"""Google's APIs played over real HTTP on loopback, one small server per API."""
