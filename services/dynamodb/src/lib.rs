//! Amazon DynamoDB (botocore service `dynamodb`) and DynamoDB Streams (`dynamodbstreams`).
