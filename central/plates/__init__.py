"""Central's plate service: the suspect list, matching, hits, sightings."""
