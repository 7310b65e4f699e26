"""Central's side of OTA: releases, rollouts in waves that halt by themselves."""
