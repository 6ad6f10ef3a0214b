"""The EPJ tests use the FHIR server fixtures of tests/conftest.py."""
