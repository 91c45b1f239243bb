#!/bin/sh
# allowscope: Azure Firewall policy rules for the required hosts the capture saw blocked.
# Set these to yours first (SRC: the address space of the Azure ML compute, e.g. its
# subnet). Network rules by name need the policy's DNS proxy (DNS settings > Proxy).
RG='<resource-group>' POLICY='<firewall-policy>' RCG='<rule-collection-group>' SRC='<source-addresses>'
set -e
# fixes: tcp mystorage.file.core.windows.net:445 (icmp-admin-prohibited)
az network firewall policy rule-collection-group collection add-filter-collection \
  --resource-group "$RG" --policy-name "$POLICY" --rule-collection-group-name "$RCG" \
  --name allowscope-network --collection-priority 1000 --action Allow \
  --rule-name allowscope-net-tcp-445 --rule-type NetworkRule --source-addresses $SRC --ip-protocols TCP --destination-fqdns 'mystorage.file.core.windows.net' --destination-ports 445
# fixes: udp eastus.tundra.azureml.ms:5831 (udp-drop)
az network firewall policy rule-collection-group collection rule add \
  --resource-group "$RG" --policy-name "$POLICY" --rule-collection-group-name "$RCG" \
  --collection-name allowscope-network --name allowscope-net-udp-5831 --rule-type NetworkRule --source-addresses $SRC --ip-protocols UDP --destination-fqdns 'eastus.tundra.azureml.ms' --destination-ports 5831
# fixes: tcp login.microsoftonline.com:80 (http-470)
az network firewall policy rule-collection-group collection add-filter-collection \
  --resource-group "$RG" --policy-name "$POLICY" --rule-collection-group-name "$RCG" \
  --name allowscope-application --collection-priority 1100 --action Allow \
  --rule-name allowscope-app-tcp-80 --rule-type ApplicationRule --source-addresses $SRC --protocols Http=80 --target-fqdns 'login.microsoftonline.com'
# fixes: tcp ci1.eastus.instances.azureml.ms:443 (sni-reset), tcp mcr.microsoft.com:443 (tcp-reset), tcp mystorage.dfs.core.windows.net:443 (proxy-denied), tcp ws1.workspace.eastus.api.azureml.ms:443 (drop)
az network firewall policy rule-collection-group collection rule add \
  --resource-group "$RG" --policy-name "$POLICY" --rule-collection-group-name "$RCG" \
  --collection-name allowscope-application --name allowscope-app-tcp-443 --rule-type ApplicationRule --source-addresses $SRC --protocols Https=443 --target-fqdns '*.azureml.ms' 'mcr.microsoft.com' 'mystorage.dfs.core.windows.net'
#
# Not a firewall rule: these required names did not resolve. Fix DNS (the
# resolver, a DNS filter, a private DNS zone), then allow them like the rest:
#   graph.windows.net (dns-nxdomain)
#   graph.microsoft.com (dns-sinkhole)
#
# Advice, not a fix: reached although nothing in the catalog expects them;
# deny them if they are not wanted:
#   tcp/80 www.allowscope.test
#   tcp/443 example.allowscope.test updates.allowscope.test
