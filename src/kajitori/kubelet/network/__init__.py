"""Pod networking for the kubelet: CNI plugin invocation, the node's pod network, resolv.conf."""
