"""SLA: the pure business-time arithmetic (`calendar`) and the ticket clock built on it (`engine`)."""
