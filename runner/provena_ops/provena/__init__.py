"""The only package that speaks HTTP: Provena's registry, prov, job and search APIs and its Keycloak realm."""
