"""The synthetic demo hospital: CHS-DRG 1.1 cases with known truths (see docs/demo-hospital.md)."""

from pipelines.demo.generate import DemoHospital, generate_demo

__all__ = ["DemoHospital", "generate_demo"]
