"""Motion over a capture: constant-velocity rigid motion and the generalized rolling shutter."""

from .rigid import RigidMotion

__all__ = ["RigidMotion"]
