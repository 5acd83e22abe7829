"""The media register (媒体管理簿) and the lifecycle of media and forms (G2, G3; ADR 0040)."""
