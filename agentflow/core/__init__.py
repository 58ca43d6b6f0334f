"""The floor every room stands on: messages, records, events, limits, errors, schemas, tools, results."""
