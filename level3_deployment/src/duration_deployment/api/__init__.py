"""The router's HTTP layer: dependencies, documented error answers and one module of routes
per resource. Routes translate HTTP to calls of the data plane and the manager, and back."""
