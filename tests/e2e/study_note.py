"""The study note's manifests (``../shared/seed/``), byte for byte, for the tests that apply them.

``test_seed_manifests_e2e.test_embedded_manifests_are_the_notes`` checks they
are still the note's text wherever the note is on the machine.
"""

KUBIA_STATEFULSET = """\
apiVersion: apps/v1beta1
kind: StatefulSet
metadata:
  name: kubia
spec:
  serviceName: kubia
  replicas: 2
  template:
    metadata:
      labels:
        app: kubia
    spec:
      containers:
      - name: kubia
        image: luksa/kubia-pet
        ports:
        - name: http
          containerPort: 8080
        volumeMounts:
        - name: data
          mountPath: /var/data
  volumeClaimTemplates: # このテンプレートを使ってPersistentVolumeClaimsが作成される
  - metadata:
      name: data
    spec:
      resources:
        requests:
          storage: 1Mi
      accessModes:
      - ReadWriteOnce
"""

SSD_MONITOR_DAEMONSET = """\
apiVersion: apps/v1beta2
kind: DaemonSet
metadata:
  name: ssd-monitor
spec:
  selector:
    matchLabels:
      app: ssd-monitor
  template:
    metadata:
      labels:
        app: ssd-monitor
    spec:
      nodeSelector:
        disk: ssd
      containers:
      - name: main
        image: luksa/ssd-monitor
"""


# Not the note's text: the headless Service its StatefulSet names (``serviceName: kubia``),
# which the book creates alongside it.
KUBIA_HEADLESS_SERVICE = """\
apiVersion: v1
kind: Service
metadata:
  name: kubia
spec:
  clusterIP: None
  selector:
    app: kubia
  ports:
  - name: http
    port: 80
"""
