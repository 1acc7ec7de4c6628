"""The licensing service's HTTP API (ILS v1): what a UMS asks over HTTPS. docs/ILS_API.md."""
