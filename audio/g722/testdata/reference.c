#include <stdio.h>
#include <stdint.h>
#include <math.h>
#include <spandsp.h>
int main(void){
  enum {N=16000};
  static int16_t in[N], out[N]; static uint8_t enc[N/2];
  uint32_t seed=12345;
  for(int i=0;i<N;i++){
    double t=(double)i/16000.0;
    double f=100.0+7000.0*t; /* chirp 100 Hz .. 7.1 kHz */
    seed=seed*1103515245u+12345u;
    double noise=((int)((seed>>16)&0x7fff)-16384)/16384.0;
    double v=12000.0*sin(2*M_PI*(100.0*t+3500.0*t*t))+1500.0*noise;
    if(i>=12000 && i<12800) v = (i&1)? 32767: -32768; /* full-scale square burst */
    in[i]=(int16_t)v; (void)f;
  }
  g722_encode_state_t *e=g722_encode_init(NULL,64000,0);
  int n=g722_encode(e,enc,in,N);
  g722_decode_state_t *d=g722_decode_init(NULL,64000,0);
  int m=g722_decode(d,out,enc,n);
  FILE*f=fopen("input.s16","wb");fwrite(in,2,N,f);fclose(f);
  f=fopen("spandsp.g722","wb");fwrite(enc,1,n,f);fclose(f);
  f=fopen("spandsp_decoded.s16","wb");fwrite(out,2,m,f);fclose(f);
  printf("%d %d\n",n,m);
  return 0;
}
