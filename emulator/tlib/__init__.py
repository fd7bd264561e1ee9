"""Sans-I/O core of drlab's simplified T-Library (DESIGN §2.1): framing, messages, liveness."""
