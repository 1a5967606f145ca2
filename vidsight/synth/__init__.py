"""Synthetic media with known ground truth: videos, RTSP test server, HLS, lectures."""
