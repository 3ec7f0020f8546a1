"""The Kafka intake: integration engines produce contract v1 events to a topic; the
intake records them through the ingest core and answers each record on a results topic
(README "Kafka intake")."""
