"""drlab: a disaster-recovery lab emulating a Genesys SIP Cluster, GWS nodes and WWE desktops."""
