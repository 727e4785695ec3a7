"""The pcci command: the REST client, the services' entry points, keygen and check-config."""
