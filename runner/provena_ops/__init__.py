"""provena-ops: declarative playbooks for Provena administration, and an embedded Provena sandbox."""

__version__ = "0.1.0"
