"""The rules, one module per family; every module here is loaded by the registry."""
