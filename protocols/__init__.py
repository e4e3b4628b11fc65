"""Protocol schema, TOML load/save, and the bundled protocol library."""

from protocols.loader import ProtocolError, dump_protocol, load_protocol, parse_protocol
from protocols.schema import ExerciseProtocol, GaitProtocol, Protocol

__all__ = ["ExerciseProtocol", "GaitProtocol", "Protocol", "ProtocolError", "dump_protocol",
           "load_protocol", "parse_protocol"]
