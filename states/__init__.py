"""WHAT exists: phases, the chart as data, the policy, pure guards and derivations.

Imports only the standard library and pydantic, so a clinician can review it alone.
"""
