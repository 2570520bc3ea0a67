"""One module per `musegen` sub-command; each defines `register(subparsers)`."""
