"""Entity registry: assets, devices and places, identified the NGSI-LD way."""
