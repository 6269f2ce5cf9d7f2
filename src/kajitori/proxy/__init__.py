"""kube-proxy's equivalent: Services and EndpointSlices from the API, programmed into nftables."""
