"""The ChatKit protocol (`POST /chatkit`) over this backend's conversations and chat turn."""
