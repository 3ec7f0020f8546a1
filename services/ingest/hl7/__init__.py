"""HL7 v2 (ER7) messages into contract v1 events.

er7.py reads the bytes (segment separators, encoding characters, escape sequences,
batches), profile.py the per-facility field mapping (YAML), mapping.py turns one message
into events (pure), acks.py writes the answers, intake.py takes each message through the
ingest core: validated, made durable, acknowledged.
"""
