"""Protocol schema, TOML load/save, and the bundled protocol library."""

from protocols.loader import ProtocolError, dump_protocol, load_protocol, parse_protocol
from protocols.schema import Protocol

__all__ = ["Protocol", "ProtocolError", "dump_protocol", "load_protocol", "parse_protocol"]
