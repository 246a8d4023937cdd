//! ondo-server: the OpenAI-compatible HTTP surface (routes, SSE, errors). Built in a later issue.
