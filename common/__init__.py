import warnings

# TaskFlow imports oslo.service's eventlet backend, which warns on import; Lamina runs on
# native threads and never uses eventlet.
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
