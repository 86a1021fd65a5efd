"""dwbot: ChatOps notifications for Alibaba Cloud DataWorks OpenEvent."""

__version__ = "0.1.0"
