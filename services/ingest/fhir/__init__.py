"""FHIR R4 intake: ChargeItem and Encounter resources (and batch/transaction Bundles of
them) translated into contract v1 events, which go through the same ingest core as
POST /v1/events.

`mapping` is the site configuration (which hospital, department and category each
FHIR reference or coding means), `resources` reads a submission with the R4B models of
fhir.resources, `translate` is the pure translation of one resource into events,
`outcome` builds the OperationOutcome and response Bundle answers, and `service` does
the ledger look-ups and hands the events to the ingest core.
"""
