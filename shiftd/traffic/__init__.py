"""Traffic routers: pure computation of mesh object changes, and the writers that apply them."""
