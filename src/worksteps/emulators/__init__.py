"""Emulators of the real SRCNet site services, speaking their wire protocols on loopback.

Nothing above ``site`` imports this package: emulators are reached over HTTP only.
"""
