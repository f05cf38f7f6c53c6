"""MediaPipe Tasks export: `export_mediapipe` (export.py); MediaPipe itself runs in its own interpreter (client.py)."""
