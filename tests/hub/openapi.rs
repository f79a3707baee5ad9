//! Checks the OpenAPI document against the routes that exist.
