"""The dispatch domain: trips and offers (`trips`), drivers' positions (`locations`), the batched
matcher (`matching`) and the sockets (`realtime`)."""
