"""SMS providers behind the `SmsChannel` port (`services/ports.py`), one module per provider:
`sns_sms` (Amazon SNS direct publish: free text; regions with SNS SMS, and moto locally) and `aliyun_sms` (Alibaba
Cloud SMS: signature + approved templates; mainland China). `credentials` reads a provider's access key from AWS
Secrets Manager or SSM. Nothing is imported here: each provider's SDK loads only when that channel first sends."""
